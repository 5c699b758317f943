"""Neural-network building blocks shared by the learned methods (torch is imported by the modules, not here)."""
