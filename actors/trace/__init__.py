"""Message traces (S13.3): the line format and its loader, the recorder, replay, the viewer."""
