"""The console's core: everything that talks to PostgreSQL, the filesystem and the scheduler.

Nothing in this package may import textual; the front ends (``console.ui``, ``console.cli``)
receive core objects through their constructors.
"""
