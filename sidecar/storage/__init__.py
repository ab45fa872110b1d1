"""PostgreSQL (+pgvector): the source of truth. The only package that speaks SQL."""
