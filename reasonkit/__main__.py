"""``python -m reasonkit`` (and ``accelerate launch -m reasonkit train ...``) runs the CLI."""
from .cli import main

if __name__ == "__main__":
    main()
