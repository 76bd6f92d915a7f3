"""Test doubles for clouds the tests cannot reach (moto's gaps filled, Vertex fake, ...)."""
