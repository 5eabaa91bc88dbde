"""Packaging from settings.ini (the nbdev 2 template's setup.py, trimmed)."""
from configparser import ConfigParser
import setuptools, shlex

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
c = cfg['DEFAULT']
lic = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}[c['license']]
reqs = shlex.split(c.get('requirements', ''))
dev = shlex.split(c.get('dev_requirements', ''))
setuptools.setup(
    name=c['lib_name'], version=c['version'], description=c['description'],
    license=lic[0], author=c['author'], author_email=c['author_email'],
    classifiers=['Development Status :: 3 - Alpha', 'Intended Audience :: Developers',
                 'License :: ' + lic[1], 'Natural Language :: English',
                 'Programming Language :: Python :: 3'],
    url=c['git_url'], packages=setuptools.find_packages(include=['cobra_lit', 'cobra_lit.*']),
    include_package_data=True, package_data={'cobra_lit': ['assets/**/*']},
    install_requires=reqs,
    extras_require={'dev': dev,
                    # CUDA-only kernels: build on a GPU machine (see README)
                    'gpu': ['mamba-ssm', 'causal-conv1d']},
    python_requires='>=' + c['min_python'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': c.get('console_scripts', '').split(),  # name=module:func, one a line
                  'nbdev': [f"{c['lib_path']}={c['lib_path']}._modidx:d"]},
)
