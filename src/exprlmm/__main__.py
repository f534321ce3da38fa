"""Allow ``python -m exprlmm``."""

from exprlmm.cli import main

if __name__ == "__main__":
    main()
