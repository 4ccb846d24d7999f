"""Instance selection within a variant: one small class per RoutingStrategy."""
