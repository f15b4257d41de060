"""Code shared by several stages: errors, frame IO, stage logging, the component factory."""
