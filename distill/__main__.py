"""`python -m distill ...` (also what `torchrun -m distill` runs)."""

from distill.cli import main

if __name__ == "__main__":
    main()
