"""The dirac-dms-* commands (thin: parse, call the DataManager, print one line per LFN)."""
