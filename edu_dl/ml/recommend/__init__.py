"""Recommender models: what to study next. Importing a model module registers it by name."""
