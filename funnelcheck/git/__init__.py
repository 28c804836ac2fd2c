"""Git-native views: parameter history and what-if diffs between revisions."""
