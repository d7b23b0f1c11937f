"""``POST /api/v1/token`` request and response."""

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gpufleet.schemas.enums import TokenGrantType


class TokenRequest(BaseModel):
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
