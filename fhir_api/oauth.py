"""django-oauth-toolkit's validator, narrowed to Carnet's API clients: the client
credentials grant only, a revoked client gets no token, and a token carries at most
the scopes its client was given (all of them when it asks for none)."""

from oauth2_provider.oauth2_validators import OAuth2Validator


def _api_client(application):
    return getattr(application, "api_client", None)


class ClientValidator(OAuth2Validator):
    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        client = _api_client(request.client)
        return client is not None and not client.is_revoked

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type == "client_credentials" and super().validate_grant_type(
            client_id, grant_type, client, request, *args, **kwargs
        )

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        api_client = _api_client(client)
        return api_client is not None and set(scopes) <= set(api_client.scopes)

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        api_client = _api_client(request.client)
        return list(api_client.scopes) if api_client is not None else []
