"""The WSGI application: factory, blueprints by audience, forms and error pages."""
