"""`python -m tokneigh`: the same entry point as the ``tokneigh`` console script."""

from tokneigh.entry import main

if __name__ == "__main__":
    main()
