"""`python -m newtune`: what launchers run (`torchrun -m newtune train`, `accelerate launch -m newtune train`)."""

from newtune.cli import run

if __name__ == "__main__":
    run()
