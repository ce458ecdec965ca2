"""LTI 1.3 Advantage tool: OIDC login, resource-link launch, deep linking, grade passback (AGS),
roster sync (NRPS), JWKS. A sub-app with its own tables (app label ``edu_dl_lti``), so a site
that does not speak LTI can leave it out of INSTALLED_APPS."""
