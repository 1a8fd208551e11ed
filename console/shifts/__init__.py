"""Shifts: start and end with the agent's name, notes for the next shift, shifts left open at a crash.

May import: ``console.ports`` and the storage repositories. Independent of replies, surveys and accounts
(import-linter keeps it so).
"""
