"""Presentation: terminal tables and text exports of results."""
