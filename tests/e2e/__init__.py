"""End-to-end tests against reference implementations of the channels' servers, run on this machine."""
