"""Logging in without the IDE: the device-code flows (AWS SSO OIDC for Builder ID and IAM Identity Center, Kiro's
social device flow for Google and GitHub) and the profile lookup, giving a gateway-owned refresh-token account."""
