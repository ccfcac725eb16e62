"""Test doubles: real local servers standing in for external services."""
