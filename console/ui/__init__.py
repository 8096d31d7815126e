"""The Textual front end. Receives core objects through constructors; holds no globals."""
