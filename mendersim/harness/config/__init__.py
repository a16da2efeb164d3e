"""The harness's options: parsed, listed, kept secret."""
