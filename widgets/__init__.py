"""PySide6 widgets: the queue model and view, delegates, the conversation pane and the main window."""
