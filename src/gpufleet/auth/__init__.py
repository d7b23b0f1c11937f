"""Credentials and tokens: hashing secrets, signing and verifying access tokens."""
