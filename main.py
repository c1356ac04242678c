"""Open GPT Explorer: ``python main.py [CHECKPOINT]``. Same as ``gpt-explorer``."""
import sys

from explorer.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
