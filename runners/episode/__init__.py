"""One episode: the substrate built for a scenario, its slots filled with
policies, the step loop, the observers that measure it and its record."""
