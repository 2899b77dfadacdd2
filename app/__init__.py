"""MTL Studio UI: services (model access) and components (views) used by the page scripts."""
