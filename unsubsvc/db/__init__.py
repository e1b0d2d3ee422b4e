"""Storage: the declarative base, typed models and the migrations that shape the schema."""
