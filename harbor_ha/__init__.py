"""harbor-ha: highly available Harbor on AWS as cdktf constructs."""
