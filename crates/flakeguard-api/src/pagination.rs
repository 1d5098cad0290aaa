//! `page`/`per_page` pagination with GitHub-style `Link` headers (`first`, `prev`, `next`,
//! `last`) and `X-Total-Count`, and a query extractor whose errors use the API's body.

use axum::Json;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use flakeguard_store::PageRequest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub(crate) const DEFAULT_PER_PAGE: u32 = 30;
pub(crate) const MAX_PER_PAGE: u32 = 100;

/// `Query<T>` answering 422 `invalid_query` (naming the parameter) instead of axum's text.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::invalid(
                    "invalid_query",
                    format!("query string: {detail}"),
                ))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// 1-based page number (default 1).
    pub(crate) page: Option<u64>,
    /// Items per page, 1–100 (default 30).
    pub(crate) per_page: Option<u32>,
}

impl PageParams {
    pub(crate) fn request(&self) -> Result<(u64, u32, PageRequest), ApiError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 || page > 1_000_000 {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("page={page}: expected a page number from 1"),
            ));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("per_page={per_page}: expected 1 to {MAX_PER_PAGE}"),
            ));
        }
        Ok((
            page,
            per_page,
            PageRequest {
                offset: (page - 1) * u64::from(per_page),
                limit: per_page,
            },
        ))
    }
}

/// A page of a listing: `{"items":[…],"page":…,"per_page":…,"total":…}` plus headers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Paged<T: Serialize> {
    pub(crate) items: Vec<T>,
    pub(crate) page: u64,
    pub(crate) per_page: u32,
    pub(crate) total: u64,
    #[serde(skip)]
    pub(crate) uri: Option<Uri>,
}

impl<T: Serialize> Paged<T> {
    pub(crate) fn new(items: Vec<T>, page: u64, per_page: u32, total: u64, uri: &Uri) -> Self {
        Paged {
            items,
            page,
            per_page,
            total,
            uri: Some(uri.clone()),
        }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let link = self
            .uri
            .as_ref()
            .map(|uri| link_header(uri, self.page, self.per_page, self.total))
            .filter(|l| !l.is_empty());
        let total = self.total;
        let mut response = Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert("x-total-count", HeaderValue::from(total));
        if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LINK, value);
        }
        response
    }
}

/// `<…?page=2&per_page=30>; rel="next", …` keeping every other query parameter as sent.
pub(crate) fn link_header(uri: &Uri, page: u64, per_page: u32, total: u64) -> String {
    let last = total.div_ceil(u64::from(per_page)).max(1);
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("per_page="))
        .collect();
    let url = |n: u64| {
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!("<{}?{query}page={n}&per_page={per_page}>", uri.path())
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    links.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_point_at_neighbours() {
        let uri: Uri = "/api/v1/repos/a/b/tests?status=flaky&page=2&per_page=10"
            .parse()
            .unwrap();
        let link = link_header(&uri, 2, 10, 35);
        assert_eq!(
            link,
            "</api/v1/repos/a/b/tests?status=flaky&page=1&per_page=10>; rel=\"first\", \
             </api/v1/repos/a/b/tests?status=flaky&page=1&per_page=10>; rel=\"prev\", \
             </api/v1/repos/a/b/tests?status=flaky&page=3&per_page=10>; rel=\"next\", \
             </api/v1/repos/a/b/tests?status=flaky&page=4&per_page=10>; rel=\"last\""
        );
        assert_eq!(link_header(&"/x".parse().unwrap(), 1, 30, 5), "");
    }

    #[test]
    fn page_bounds_are_checked() {
        let ok = PageParams {
            page: Some(3),
            per_page: Some(20),
        }
        .request()
        .unwrap();
        assert_eq!(
            ok.2,
            PageRequest {
                offset: 40,
                limit: 20
            }
        );
        assert!(
            PageParams {
                page: Some(0),
                per_page: None
            }
            .request()
            .is_err()
        );
        assert!(
            PageParams {
                page: None,
                per_page: Some(101)
            }
            .request()
            .is_err()
        );
    }
}
