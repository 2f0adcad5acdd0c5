"""The Locust integration: agent users built from the transport registry, the rig's
options on Locust's parser, listeners and the record relay."""
