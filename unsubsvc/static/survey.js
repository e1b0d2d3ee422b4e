// The recipient pages' only script, two progressive enhancements. Without JavaScript
// everything still works: the survey's limit is stated in its label and checked by
// the server. First: a live character count for the survey comment; the sentences
// come translated from the page (data-count, data-over).
(function () {
  "use strict";
  var field = document.querySelector("textarea[data-limit]");
  var counter = document.getElementById("comment-count");
  if (!field || !counter) {
    return;
  }
  var limit = parseInt(field.getAttribute("data-limit"), 10);
  var counted = counter.getAttribute("data-count");
  var over = counter.getAttribute("data-over");
  function update() {
    var length = field.value.length;
    var text = length > limit ? over : counted;
    counter.textContent = text
      .replace("{count}", String(length))
      .replace("{over}", String(length - limit));
    counter.classList.toggle("over", length > limit);
  }
  field.addEventListener("input", update);
  update();
}());

// After a Post/Redirect/Get the URL ends in #status: move focus to the status message so
// screen readers announce it (WCAG 2.2 SC 4.1.3). Without JavaScript the browser still
// scrolls to it.
(function () {
  "use strict";
  var status = document.getElementById("status");
  if (status && window.location.hash === "#status") {
    status.focus();
  }
}());
