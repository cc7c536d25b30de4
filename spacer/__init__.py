"""spacer: CoralNet's vision backend, a drop-in replacement for pyspacer 0.14."""
__version__ = '0.14.0+spacer.0.1.0'
