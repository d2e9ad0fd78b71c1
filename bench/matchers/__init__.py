"""Matchers: does one text state what another states? `base` holds the contract; `lexical` and `neural` the
implementations."""
