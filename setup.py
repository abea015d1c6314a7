"""Build hook (metadata is in pyproject.toml): ship the default prompts and config in the package.

``prompts/`` and ``config.yaml`` stay at the repository's top level, where they are edited. A
wheel carries copies as ``assistant/defaults/prompts/*.txt`` (and the ``*.gbnf`` grammars) and ``assistant/defaults/config.yaml``,
which ``assistant.prompts.default_file`` finds; an editable install has no copies and reads the
top-level files. The sdist includes both through MANIFEST.in.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEFAULTS = Path("assistant", "defaults")


class BuildPyWithDefaults(build_py):
    def _defaults(self) -> dict[str, str]:
        """Build path -> source path of every shipped default."""
        config, prompts = ROOT / "config.yaml", sorted(p for p in (ROOT / "prompts").iterdir() if p.suffix in (".txt", ".gbnf"))
        if not config.is_file() or not prompts:
            raise FileNotFoundError(f"the build needs {config} and {ROOT / 'prompts'}/*.txt")
        sources = [config, *prompts]
        out = Path(self.build_lib, DEFAULTS)
        return {str(out / s.relative_to(ROOT)): str(s) for s in sources}

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package is read in place: default_file finds the top-level files
            return
        for target, source in self._defaults().items():
            self.mkpath(str(Path(target).parent))
            self.copy_file(source, target, preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        # In editable mode the base class already lists get_output_mapping()'s keys.
        return outputs if self.editable_mode else [*outputs, *self._defaults()]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), **self._defaults()}


setup(cmdclass={"build_py": BuildPyWithDefaults})
