"""The engine: step types, compiling stored definitions, running images through them.

It knows nothing about HTTP; it reaches the outside world only through `RunServices`.
"""
