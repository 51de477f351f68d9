"""`python -m memorization.spec CONFIG...`: check config files as the workflow will (memorization.configuration)."""

from .configuration import main

if __name__ == "__main__":
    main()
