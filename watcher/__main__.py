"""``python -m watcher``."""

from watcher.entry import main

if __name__ == "__main__":
    main()
