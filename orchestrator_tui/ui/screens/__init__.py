"""The app's screens: one per mode (menu, dashboard, messages, graph, insights), and modals."""
