"""Who is calling: access tokens, JWKS, session tokens, the principal, pseudonymous keys and the origin check."""
