import json
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithPlayerLibs(build_py):
    """Also copies the player libraries that ``npm ci`` put in the checkout's
    node_modules (the files srs_twisted/www/libs.json names) into the built
    package's www/lib/, so a non-editable install serves /players/lib/ by
    itself.  Without node_modules the pages' player libraries are missing
    (the server says so with a 404); nothing is fetched from elsewhere."""

    def run(self):
        super().run()
        with open(os.path.join(HERE, "srs_twisted", "www", "libs.json"), encoding="utf-8") as f:
            libs = json.load(f)
        target = os.path.join(self.build_lib, "srs_twisted", "www", "lib")
        for name, inside in libs.items():
            source = os.path.join(HERE, "node_modules", inside)
            if not os.path.isfile(source):
                print(f"warning: {source} is missing (run `npm ci` first): /players/lib/{name} will be a 404")
                continue
            os.makedirs(target, exist_ok=True)
            shutil.copyfile(source, os.path.join(target, name))


setup(
    name="srs-twisted",
    version="0.1.0",
    description="A real-time video server on Twisted, compatible with SRS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["srs_twisted", "srs_twisted.*"]) + ["twisted.plugins"],
    include_package_data=True,
    # The built-in pages (/, /console/, /players/): see srs_twisted/http/www.py.
    package_data={"srs_twisted": ["www/*.html", "www/*.js", "www/*.json", "www/console/*", "www/players/*"]},
    cmdclass={"build_py": BuildPyWithPlayerLibs},
    install_requires=[
        "twisted>=23.10",
        "autobahn>=23.1",
        "pyopenssl>=23.0",
        "cryptography>=41.0",
        "service_identity>=21.1",
        "klein>=23.5",
        "imageio-ffmpeg>=0.4.9",
        "prometheus_client>=0.17",
        "pylibsrtp>=0.10",
        "txredisapi>=1.4.10",
    ],
    extras_require={"test": ["treq>=23.11", "pyyaml>=6.0", "jsonschema>=4.0", "openapi-spec-validator>=0.7", "aiortc>=1.9", "playwright>=1.40", "atheris>=2.3"]},
    entry_points={"console_scripts": ["srs = srs_twisted.cli:main"]},
    classifiers=["Framework :: Twisted", "Programming Language :: Python :: 3.11"],
)
