from setuptools import find_packages, setup

setup(
    name="srs-twisted",
    version="0.1.0",
    description="A real-time video server on Twisted, compatible with SRS",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["srs_twisted", "srs_twisted.*"]) + ["twisted.plugins"],
    include_package_data=True,
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
    ],
    extras_require={"test": ["treq>=23.11", "pyyaml>=6.0", "jsonschema>=4.0", "openapi-spec-validator>=0.7", "aiortc>=1.9", "playwright>=1.40"]},
    entry_points={"console_scripts": ["srs = srs_twisted.cli:main"]},
    classifiers=["Framework :: Twisted", "Programming Language :: Python :: 3.11"],
)
