"""Finding families: reading what staff typed (`/family smith`, a phone, a DOB, a chart id),
the in-process set of name keys for typo-tolerant candidates, and ranked search. Read-only; may
import bot's top-level modules and models."""
