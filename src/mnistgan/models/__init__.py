"""Network definitions. Constructors take plain arguments only: no globals, no files."""
