"""The Bluesky connector against the reference PDS and AppView (``@atproto/dev-env``)."""
