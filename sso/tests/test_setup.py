"""The SSO stack installs from the project's own files: python3-saml over xmlsec/lxml wheels for
the service provider, pysaml2 plus Debian's xmlsec1 for the test identity provider."""

import os
import shutil

import pytest

from conftest import service_missing


def test_service_provider_libraries_load_and_parse_without_entities():
    from lxml import etree
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

    bomb = b'<!DOCTYPE r [<!ENTITY e "boom">]><r>&e;</r>'
    # Our SP parses IdP XML with entities and DTDs off: python3-saml refuses a DOCTYPE outright.
    with pytest.raises(Exception, match="DTD|Detected use of ENTITY"):
        OneLogin_Saml2_XML.to_etree(bomb)
    assert etree.LXML_VERSION >= (6, 1)


def test_identity_provider_signs_with_xmlsec1():
    if shutil.which("xmlsec1") is None:
        service_missing("xmlsec1 is missing: `make test` installs it (apt-get install xmlsec1)")
    from saml2.sigver import get_xmlsec_binary

    assert os.path.basename(get_xmlsec_binary()) == "xmlsec1"
