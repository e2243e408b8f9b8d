"""The domain. Plain functions over a SQLModel Session; never imports Reflex, never commits."""
