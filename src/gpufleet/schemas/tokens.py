"""``POST /api/v1/token`` request and response."""

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gpufleet.schemas.enums import TokenGrantType
from gpufleet.schemas.storable import StorableModel


class TokenRequest(StorableModel):
    # The official SDK sends ``AppId``/``AppSecret``; the reference spells them appID/appSecret.
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    grant_type: TokenGrantType | None = Field(None, alias="grantType")
    app_id: str | None = Field(
        None,
        alias="appID",
        validation_alias=AliasChoices("appID", "AppId"),
        json_schema_extra={"deprecated": True},
    )
    app_secret: str | None = Field(
        None,
        alias="appSecret",
        validation_alias=AliasChoices("appSecret", "AppSecret"),
        json_schema_extra={"deprecated": True},
    )
    code: str | None = None
    redirect_uri: str | None = Field(None, alias="redirectUri")
    refresh_token: str | None = Field(None, alias="refreshToken")
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(None, alias="clientID")
    client_secret: str | None = Field(None, alias="clientSecret")
    external_token: str | None = Field(None, alias="externalToken")


class TokenResponse(BaseModel):
    accessToken: str | None = None
    idToken: str | None = None
    refreshToken: str | None = None
    expiresIn: int | None = Field(None, description="Token lifetime in seconds")


class OAuthTokenForm(StorableModel):
    """The same request as a standard OAuth 2.0 client sends it (RFC 6749 sections 4.4 and 6),
    form-encoded; the client may authenticate with HTTP Basic instead of the two client fields.
    """

    model_config = ConfigDict(extra="ignore")

    grant_type: str = Field(description="client_credentials or refresh_token")
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    scope: str | None = Field(None, description="Accepted and ignored: rules decide access.")


class OAuthTokenResponse(BaseModel):
    """The answer to a form-encoded request, in RFC 6749 section 5.1 terms."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str | None = None
