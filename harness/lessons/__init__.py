"""The classroom: lessons (lessons/), their checks, a student's progress."""
