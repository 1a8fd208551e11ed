"""The Care Console domain: Qt-free model, SLA, sync, outbox, channels."""
