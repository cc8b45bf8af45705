//! The OpenAPI document: poem-openapi's, generated from the endpoints, and what its derive
//! cannot declare, added once in [`openapi_document`]. Served at `/openapi.json` and
//! `/openapi.yaml`; `openapi.yaml` at the project root equals it.

mod conventions;
mod examples;

use poem_openapi::{ContactObject, LicenseObject, OpenApiService, ServerObject};

use crate::endpoints::{AuthApi, EventsApi, MetaApi, ModerationApi, PostsApi, UsersApi, VotesApi};

pub(crate) type Apis = (
    MetaApi,
    UsersApi,
    AuthApi,
    PostsApi,
    VotesApi,
    EventsApi,
    ModerationApi,
);

/// The OpenAPI document's source: every operation of the service.
pub(crate) fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            MetaApi,
            UsersApi,
            AuthApi,
            PostsApi,
            VotesApi,
            EventsApi,
            ModerationApi,
        ),
        "Social API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "People register, log in with a JWT, write posts (drafts included), list and search \
         them, and vote for them. Every error is an RFC 9457 problem document \
         (`application/problem+json`).",
    )
    // Relative: the API is wherever this document was served from (any host, port or proxy).
    .server(ServerObject::new("/").description(
        "This deployment: the production service, or a development one, wherever the \
         document was read.",
    ))
    .contact(ContactObject::new().name("The Social API maintainers"))
    .license(LicenseObject::new(env!("CARGO_PKG_LICENSE")).url(concat!(
        "https://spdx.org/licenses/",
        env!("CARGO_PKG_LICENSE"),
        ".html"
    )))
}

/// The spec as served at `/openapi.yaml`; `openapi.yaml` at the project root equals it.
pub fn openapi_yaml() -> String {
    yaml_text(&openapi_document())
}

/// The spec as served at `/openapi.json`.
pub fn openapi_json() -> String {
    json_text(&openapi_document())
}

pub(crate) fn yaml_text(document: &serde_yaml::Value) -> String {
    serde_yaml::to_string(document).expect("the spec serialises as YAML")
}

pub(crate) fn json_text(document: &serde_yaml::Value) -> String {
    serde_json::to_string_pretty(document).expect("the spec serialises as JSON")
}

/// poem-openapi's document with what it cannot declare: the conventions every operation
/// keeps (see `conventions`), the links between responses and operations, and the examples
/// of its parts. Read back from its own YAML, whose mappings keep their order, so the served
/// forms differ from poem-openapi's only by what is added here.
pub(crate) fn openapi_document() -> serde_yaml::Value {
    let mut spec: serde_yaml::Value =
        serde_yaml::from_str(&openapi_service().spec_yaml()).expect("poem-openapi writes YAML");
    conventions::apply(&mut spec);
    let list_posts_ok = spec
        .get_mut("paths")
        .and_then(|paths| paths.get_mut("/posts"))
        .and_then(|item| item.get_mut("get"))
        .and_then(|operation| operation.get_mut("responses"))
        .and_then(|responses| responses.get_mut("200"))
        .and_then(serde_yaml::Value::as_mapping_mut)
        .expect("the spec documents listPosts' 200");
    list_posts_ok.insert("links".into(), next_page_link());
    examples::add(&mut spec);
    spec
}

/// `listPosts` → `listPosts` by the `cursor` in the `Link` header of a full page (the
/// cursor carries the page size and search). The `#regex:` suffix is schemathesis'
/// extension of runtime expressions, which can only name a whole header: tools without
/// it see a link whose value they cannot read.
fn next_page_link() -> serde_yaml::Value {
    serde_yaml::to_value(serde_json::json!({
        "nextPage": {
            "operationId": "listPosts",
            "parameters": {
                "cursor": "$response.header.Link#regex:[?&]cursor=([^&>]+)",
            },
            "description": "The page after this one: `cursor` from the `Link` header, which \
                carries the page's size and search.",
        }
    }))
    .expect("a link is a YAML value")
}
